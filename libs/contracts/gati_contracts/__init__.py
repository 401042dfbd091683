"""Resource models, event schemas and subjects: the contracts every service and tool shares."""
