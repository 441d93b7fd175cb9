"""The browser view of a workspace (``swapwizard serve WS``): ``server`` (aiohttp) and its one ``page``."""
