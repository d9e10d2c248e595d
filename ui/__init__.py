"""Helpmate's faces: the `helpmate` command line and the Streamlit app."""
