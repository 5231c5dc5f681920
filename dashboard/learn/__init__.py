"""The Learn page's helpers: the lesson (lesson, pure), its canary run's numbers and figures
(lesson_evidence, pure), the parts every step draws (parts) and the ten steps (steps)."""
