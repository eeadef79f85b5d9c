"""FAQ knowledge base, template replies, readability check and the embedded NLU."""
