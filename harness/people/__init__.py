"""The people of a drill: the roster (who, who is absent, who is next in line for a step), their
moves as journal records, and the desk where a live drill's people claim and complete steps."""
