"""Use cases. Each runs as one short transaction; the SQL sits beside the rule that needs it."""
