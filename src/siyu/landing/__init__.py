"""Landing pages: mobile H5 pages made from layouts, with a form that collects a phone number and
marketing consent (the consent text versioned and kept with each record), and their visits."""
