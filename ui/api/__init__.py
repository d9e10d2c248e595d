"""The HTTP API (`helpmate api`): OpenAI-compatible chat, conversations, feedback, ingestion jobs and
operators' data over FastAPI, for websites, help desks and scripts that will not use the web app.

It sits in ``ui`` because it is an entry point like the Streamlit app and the CLI: every request
carries an API key (``keys``), becomes a ``Caller`` (``assistant.access``) from that key, and the
agent's tools check the caller again. Nothing is kept in process memory that another worker would
need (keys, rate counts, conversation secrets and jobs live in the database), so `helpmate api
--workers N` runs several processes side by side. It never imports Streamlit.
"""
