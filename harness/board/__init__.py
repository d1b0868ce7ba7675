"""The command board of a live drill: one web page that the facilitator projects and participants
open on their phones (docs/board.md).

- `feed.py`: what the page shows, read from the journal, the monitor and the desk;
- `app.py`: the Flask app (the page, its state as JSON, the people's moves, the halt button);
- `server.py`: a threaded Werkzeug server on 127.0.0.1 for the length of the drill;
- `injects.py`: the scenario's injects, played on their own lane at their drill times.
"""
