"""The demos behind `petalops demo`: a live canary and the drift -> retrain loop, end to end."""
