"""Journey analytics: paths, funnels, retention, attribution, return on spend, engagement and drivers."""
