"""Running the pipeline notebooks (papermill, HTML reports) and the plots they show."""
