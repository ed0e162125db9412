"""Journeys: definitions, validation, the durable runtime next to the outbox, and campaign results.

The runner and results are imported from their modules (`tailor.journeys.service`); this
package's surface is what reading and checking a definition needs.
"""

from tailor.journeys.definitions import JourneyDefinition, Step, parse_journey
from tailor.journeys.exceptions import InvalidJourney, UnknownJourneyError

__all__ = ["InvalidJourney", "JourneyDefinition", "Step", "UnknownJourneyError", "parse_journey"]
