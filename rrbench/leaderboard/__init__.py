"""Everything about published records: verification, evaluation of outside runs, reproduction, the board (markdown
and HTML) and the CI regression gate."""
