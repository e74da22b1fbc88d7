"""The HTTP app: create_app, API routes, middleware (journal, faults), the control plane, uvicorn runner. Imports
the model and the contract."""
