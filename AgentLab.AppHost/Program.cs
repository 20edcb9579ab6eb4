// Placeholder until the AppHost issue: the resource model and runner come next.
Console.WriteLine("AgentLab.AppHost: not implemented yet. Start the services one by one (see README.md).");
return 1;
