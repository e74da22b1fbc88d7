"""The HTTP app: create_app, API routes, the front door (control guard, journal, body limit, faults), the control
plane, uvicorn runner. Imports the model and the contract."""
