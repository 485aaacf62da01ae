"""The rule language shared by tags and segments: typed nodes, the catalog check, the Ibis compiler."""
