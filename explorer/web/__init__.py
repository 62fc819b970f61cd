"""What the app needs beyond Streamlit, testable without it: shareable links (links.py), the eps view sent to the
browser (eps_view.py), one store of attack results for every session (shared_results.py) and the queue that runs
them one at a time (turns.py)."""
