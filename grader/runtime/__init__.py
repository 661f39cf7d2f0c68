"""What every grading run needs (the pytest plugin's helpers, fixtures, checks): ships to
students with public/ and to the autograder with hidden/ (grader/README.md, "Layout")."""
