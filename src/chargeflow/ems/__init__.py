"""The site Energy Management System (TF-EVC EMS): balance, fuse tree, ESS."""
