"""Commands of this group are registered here (work in progress)."""
