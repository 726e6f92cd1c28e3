"""The embedded default: local servers, simulated cameras and a supervisor (`vigie run`)."""
