"""The hospital's emergency plan as one document, and the readiness audit that checks it before any
drill: static checks of the plan, live checks against a stack brought up with no fault, a report."""
