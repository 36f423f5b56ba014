"""The limit policy: the file risk managers edit (config), the pure rule ladder (ladder), the
night's decisions with their reasons (decisions) and how one limit was reached (explain)."""
