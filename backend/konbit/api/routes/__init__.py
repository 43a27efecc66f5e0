"""One router per resource or actor."""
