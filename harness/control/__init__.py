"""The control surface the hospital's own runbook scripts work through: the environment every exec
step is given (env.py), and the plan's moves a script asks a running drill for (`hospital-drill ctl`)."""
