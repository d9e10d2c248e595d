"""Language-model backends behind one small interface (see ``base``)."""
