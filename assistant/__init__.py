"""The customer assistant: progress answered from the case, other questions from the knowledge base."""
