"""The fake's model: the store, predictions and their lifecycle, outcome rules, the clock, placeholder images.
Imports only the contract."""
