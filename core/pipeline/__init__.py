"""The AI pipeline: a LangGraph from validation to send, its service and human review."""
