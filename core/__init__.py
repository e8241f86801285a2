"""Omni Ops Console service layer. Framework-free: never imports streamlit, pages or jobs."""
