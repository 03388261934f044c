"""CryoTRANS for ChimeraX: predict the high-resolution map of a rare state, and the motion to it."""
