"""The staff chat UI (Streamlit)."""
