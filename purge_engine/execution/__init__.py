"""How a run's constituent chains get trained (DESIGN section 3): the chain tasks and their schedule
(chains.py), one Executor protocol with one method (executors.py: and the in-process loop), lanes of one
batched model (lanes.py), Ray tasks (ray_executor.py), and the one decision of which executor serves a
run (choice.py). Importing the package imports none of them."""
