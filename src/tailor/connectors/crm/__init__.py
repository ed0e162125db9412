"""Two-way sync of a CRM table with Tailor's profiles (a three-way merge per contact and field)."""
