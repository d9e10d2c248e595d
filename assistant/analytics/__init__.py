"""What operators ask of the stored conversations: sentiment aggregates, topics, spike alerts, questions in words."""
