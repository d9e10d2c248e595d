"""What customers and the assistant said: conversations and messages, feedback, tickets, CSV/JSONL imports."""
