"""What several pages share: session state and cached resources (state), background jobs (jobs), the
parts they draw alike (components), widget arguments of config fields (fields), pure table and
figure builders (views, grid, figures, evidence)."""
