"""Cases: intake, the workflow, the catalogue and routing, the ledger, bulk import and the Open311
facade.
"""
