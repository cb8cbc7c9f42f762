from porting.cli import main

raise SystemExit(main())
