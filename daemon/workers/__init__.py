"""Background work: the durable job runner and the retry policy it applies."""
