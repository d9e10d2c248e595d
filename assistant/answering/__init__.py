"""Grounded answers: prompts with numbered passages, the support check, verified answers, the ``Assistant`` facade."""
