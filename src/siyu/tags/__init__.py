"""The tag library, manual tagging, and the rule and computed tags the batch run keeps current."""
