class RulesFileError(ValueError):
    """A rules, profile or calendar file that cannot be used; the message names file and field."""
