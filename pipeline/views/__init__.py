"""Page back-ends for the dashboard: plain functions over the pipeline, no streamlit."""
