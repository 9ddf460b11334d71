"""The graded-response rules: a validated, versioned document (schemas), its table (models), reading and
replacing it (service). Every incident records the version it was planned under, so replacing the rules never
rewrites history."""
