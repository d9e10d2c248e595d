"""Sentiment of customer messages: the shipped model (``weights/``), its data, evaluation, training and batch scoring."""
