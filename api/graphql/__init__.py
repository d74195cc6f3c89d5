"""The floor's GraphQL API (Strawberry): queries over the ledger and the order rows, mutations
for the trading desk and the WebAuthn ceremonies, subscriptions fed by the hub."""
