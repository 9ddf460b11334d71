"""The hazard register (隐患排查整治): hazards found by 属地, their rectification, verification, photos, lists,
statistics and the chase of overdue deadlines."""
