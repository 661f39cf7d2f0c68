"""Grading a class: ``grade_all`` and the integrity report. Instructors only; never shipped."""
