from synapse_declare.cli import main

raise SystemExit(main())
