"""The Streamlit shell: entrypoint, navigation, and the only place core meets st caches."""
