"""The API's contract: doc pages → tables → JSON Schemas and OpenAPI, the compiled catalog, drift, the error
envelope. Imports nothing above it."""
