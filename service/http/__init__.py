"""The HTTP edge shared by every domain: request guards, parameters, paging, uploads, time
parsing, row errors.
"""
